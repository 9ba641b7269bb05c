print('make_data')
